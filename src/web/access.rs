//! Who may see what. Every handler that takes a project or issue id from the
//! URL goes through here, so a project the user cannot see answers 404
//! exactly like one that does not exist.

use super::auth::CurrentUser;
use super::{WebError, WebResult};
use crate::app::AppState;
use crate::store::{IssueRow, ProjectRow};

/// Projects the user may see, in display order.
pub async fn visible_projects(app: &AppState, user: &CurrentUser) -> WebResult<Vec<ProjectRow>> {
    if user.is_admin {
        return Ok(app.store.list_projects().await?);
    }
    let visible = app.store.visible_project_ids(user.id).await?;
    Ok(app
        .store
        .list_projects()
        .await?
        .into_iter()
        .filter(|p| visible.contains(&p.id))
        .collect())
}

pub async fn project_for(
    app: &AppState,
    user: &CurrentUser,
    project_id: i64,
) -> WebResult<ProjectRow> {
    let project = app
        .store
        .project(project_id)
        .await?
        .ok_or(WebError::NotFound)?;
    if !user.is_admin
        && !app
            .store
            .visible_project_ids(user.id)
            .await?
            .contains(&project.id)
    {
        return Err(WebError::NotFound);
    }
    Ok(project)
}

pub async fn issue_for(
    app: &AppState,
    user: &CurrentUser,
    issue_id: i64,
) -> WebResult<(IssueRow, ProjectRow)> {
    let issue = app.store.issue(issue_id).await?.ok_or(WebError::NotFound)?;
    let project = project_for(app, user, issue.project_id).await?;
    Ok((issue, project))
}

/// Settings, keys and deleting issues need an owner or admin role.
pub async fn require_manager(app: &AppState, user: &CurrentUser) -> WebResult<()> {
    if user.is_admin || app.store.is_org_manager(user.id).await? {
        Ok(())
    } else {
        Err(WebError::Forbidden)
    }
}
